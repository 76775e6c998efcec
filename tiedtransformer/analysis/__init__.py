"""What the token matrices learned: exact similarity search (``similarity.py``), the four-matrix
analysis (``matrices.py``), human word-similarity probes (``intrinsic.py``), embedding dumps
(``dumps.py``), the report and its figures, and the comparison page of several runs."""
