"""Pure, batched mask generators on (B, *spatial)."""
