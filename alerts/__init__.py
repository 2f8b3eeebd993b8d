"""Alert policy and delivery channels (knows ``checks`` result types only)."""
