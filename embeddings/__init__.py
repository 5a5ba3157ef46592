"""Sessions -> item-interaction tokens -> co-occurrence pairs -> corpus -> skip-gram model."""
