#!/usr/bin/env bash
# Packs what the lent GPU machine needs for `tools/gpu-check.sh` into .gpu/ (git-ignored; carry it
# with the device tool's `carry: [".gpu"]`): that machine has no Rust toolchain and no network.
# - the release binary built here with the Vulkan backend (wgpu; needs no LLVM, unlike `cuda`,
#   whose build downloads a prebuilt LLVM from outside the package registries), stripped and
#   gzipped (the 64 MiB the device tool carries: about 25 MB);
# - the Vulkan/GL loader packages from Debian (the device README's list), which the GPU machine
#   lacks; its NVIDIA driver provides the ICD.
# Then one device call runs, from the repository root there:
#   for f in .gpu/*.deb; do dpkg -x $f /; done; ldconfig; bash tools/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
cargo build --release --locked --features "${FEATURES:-vulkan}"
strip -o .gpu/medground target/release/medground
gzip -9f .gpu/medground
# The loaders, amd64 whatever this machine is (as the device README says).
lists=/tmp/gpu-pack-apt
mkdir -p "$lists/partial"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
apt-get "${o[@]}" update -qq
(cd .gpu && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .gpu
