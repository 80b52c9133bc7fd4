"""The Delta lake: its layout, the bronze tables and their maintenance (delta-rs)."""
