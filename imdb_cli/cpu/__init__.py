"""What makes training fast on a CPU: the memory allocator (set as ``imdb`` starts), attention and
dropout kernels for training under bf16 autocast. Each leaves GPUs, and inference, as PyTorch runs them."""
