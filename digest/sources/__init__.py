"""Where papers come from: one module per source and a small registry."""
