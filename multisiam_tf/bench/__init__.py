"""Training-step benchmarks (scripts/benchmark.py --what train_step; docs/BENCHMARKS.md).

Each contender runs in its own worker process (worker.py), so that its peak RSS is its own:
tf_steps.py times the project's training step and a bare backbone step in TensorFlow,
torch_steps.py the same bare step in plain PyTorch (the optional `bench` extra). train_step.py
starts the workers in alternating rounds and turns their step times into the report.
"""
