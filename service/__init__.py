"""service stage: the HTTP app, the QA engine and the `akhbar` command line."""

import os

# Each OpenMP runtime in a serving process (FAISS's, CTranslate2's, PyTorch's when it
# indexes) spins between parallel regions by default; on a small machine the spinning
# threads take the cores from the request threads and from each other (`bench peer`, same
# process: txtai's search p50 460 ms spinning, 62 ms passive). Each runtime reads this when
# it loads, so it is set before any of them is imported; the user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
