"""PyTorch's side of examples/profile_ops.rs: the same matrix products and elementwise ops on
the CPU with the same threads (`tools/profile.sh`)."""
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
PRODUCTS = [
    ("gate/up_proj [16,239,256] x [256,768]", (1, 16 * 239, 256, 768)),
    ("down_proj [16,239,768] x [768,256]", (1, 16 * 239, 768, 256)),
    ("q/o_proj [16,239,256] x [256,256]", (1, 16 * 239, 256, 256)),
    ("vision fc1 [16,196,192] x [192,768]", (1, 16 * 196, 192, 768)),
    ("LoRA B [16,239,16] x [16,256]", (1, 16 * 239, 16, 256)),
    ("text scores Q K^T [64,239,64] x [64,239]", (64, 239, 64, 239)),
    ("text mix P V [64,239,239] x [239,64]", (64, 239, 239, 64)),
    ("vision scores [48,196,64] x [64,196]", (48, 196, 64, 196)),
]


def mean(f):
    for _ in range(2):
        f()
    start = time.perf_counter()
    for _ in range(10):
        f()
    return (time.perf_counter() - start) / 10


print("| matrix product | GFLOP/s |\n|---|---:|")
for name, (b, m, k, n) in PRODUCTS:
    a, w = torch.randn(b, m, k), torch.randn(b, k, n)
    print(f"| {name} | {2 * b * m * k * n / mean(lambda: torch.bmm(a, w)) / 1e9:.1f} |")
x, y = torch.randn(16, 196, 768), torch.randn(16, 196, 768)
print("\n| elementwise op on [16,196,768] | ms |\n|---|---:|")
for name, op in [("x * y", lambda: x * y), ("x * 3", lambda: x * 3), ("exp(x)", lambda: x.exp()),
                 ("sigmoid(x)", lambda: torch.sigmoid(x))]:
    print(f"| {name} | {mean(op) * 1e3:.1f} |")
xa = torch.randn(16, 239, 768, requires_grad=True)


def grad_of(f):
    xa.grad = None
    f(xa).sum().backward()


print("\n| forward + backward on [16,239,768] (autograd) | ms |\n|---|---:|")
for name, f in [("silu(x)", torch.nn.functional.silu), ("x * 2 (the floor)", lambda x: x * 2)]:
    print(f"| {name} | {mean(lambda: grad_of(f)) * 1e3:.1f} |")
