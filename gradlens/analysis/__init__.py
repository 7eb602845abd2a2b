"""Analysis of captured gradients: pure functions, arrays in and arrays out (no torch, no streamlit)."""
