"""MultiSiam (Chen et al., ICCV 2021) in TensorFlow 2 / Keras 3."""
