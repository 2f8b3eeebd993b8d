"""The dashboard's pages: one file per page, run by ``st.navigation`` (each defines ``render()``)."""
