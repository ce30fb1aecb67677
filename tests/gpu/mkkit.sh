#!/bin/sh
# Packs the CUDA build's binaries and the non-system shared libraries they
# need into one tarball, for GPU machines that lack the Debian -dev
# packages: tests/gpu/mkkit.sh BUILDDIR OUT.tar.xz (BUILDDIR configured
# --with-cuda=yes). tests/gpu/check.sh takes it as KIT=OUT.tar.xz.
# The binaries link the CUDA runtime statically and load cuBLAS and
# cuSOLVER at run time: the kit ships none of CUDA's libraries, the GPU
# machine needs the driver and the sonames listed in the kit's SONAMES.
set -eu
b=$1 out=$2
make -C "$b" -j"$(nproc)" spectrumd tests/spectrumd-fixture \
	tests/test_svd_cuda tests/bench/svd_methods >/dev/null
k=$(mktemp -d)
mkdir -p "$k/lib" "$k/tests/bench"
cp "$b/spectrumd" "$k/"
cp "$b/tests/spectrumd-fixture" "$b/tests/test_svd_cuda" "$k/tests/"
cp "$b/tests/bench/svd_methods" "$k/tests/bench/"
sed -n 's/^#define CU[A-Z]*_SONAME "\(.*\)"$/\1/p' "$b/config.h" |
	tr '\n' ' ' >"$k/SONAMES"
echo "the GPU machine needs libcuda.so.1 (driver) and: $(cat "$k/SONAMES")"
# Every library but glibc's, the C++ runtime's and CUDA's (none is linked
# now; the GPU machine has its own, and torch there may need a newer
# libstdc++ than Debian 12's).
ldd "$b/spectrumd" "$b/tests/bench/svd_methods" | awk '$3 ~ /^\// { print $3 }' |
	grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|libstdc\+\+|libgcc_s|cuda|cublas|cusolver' |
	sort -u | while read -r l; do cp -L "$l" "$k/lib/"; done
tar -cJf "$out" -C "$k" .
rm -rf "$k"
ls -la "$out"
