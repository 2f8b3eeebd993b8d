"""The Streamlit app; reads the store through ``monitor``'s read API only."""
