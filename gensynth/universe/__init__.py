"""Stage 1: the program universe: grammar, enumeration, exact evaluation on the grid, program text."""
