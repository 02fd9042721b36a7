"""Stage 2: the syntactic (pq-gram SVD) and semantic (output PCA) manifolds."""
