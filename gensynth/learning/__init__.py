"""Stage 4a: training on a split: snapshot, Lightning training, scoring predictions by execution."""
