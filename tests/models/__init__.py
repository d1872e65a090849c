"""Models written twice, in torch and in jmod: the line diff between each pair is the port."""
