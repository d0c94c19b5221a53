"""Email and page templates, shipped inside the wheel as package data of digest."""
