"""Private implementation of jmod. Nothing here is public API."""
