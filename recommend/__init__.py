"""Per-user and cart-page recommendations from an index's candidate tables (paper sec. 5.4)."""
