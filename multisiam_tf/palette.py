"""Colours of cluster ids, shared by the TensorBoard summaries and the cluster pictures."""

import numpy as np

# Distinct, saturated colours (Sasha Trubetskoy's list); K beyond its length reuses them.
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25],
                    [145, 30, 180], [70, 240, 240], [245, 130, 48], [240, 50, 230]], np.uint8)
