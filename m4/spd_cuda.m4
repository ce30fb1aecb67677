dnl SPD_CHECK_CUDA: --with-cuda=auto|yes|no|DIR, UCX semantics: an explicit
dnl request that cannot be met is an error, auto only reports.
dnl The backend needs nvcc too: bf16/fp16/fp8 are widened on the device by
dnl src/svd_cuda_kern.cu (DESIGN.md §6).
dnl One binary serves GPU and CPU hosts: the CUDA runtime is linked
dnl statically (libcudart_static.a loads the driver, libcuda.so.1, at first
dnl use) and libcublas and libcusolver are dlopen()ed by src/cuda_dl.c with
dnl the sonames found here (CUBLAS_SONAME, CUSOLVER_SONAME); the run path
dnl to DIR/lib64 lets the dynamic linker find them where the build did.
dnl Sets have_cuda, have_cuda_msg, CUDA_CPPFLAGS, CUDA_LDFLAGS, CUDA_LIBS,
dnl NVCC, NVCC_GENCODE.
AC_DEFUN([SPD_CHECK_CUDA], [
have_cuda=no
have_cuda_msg="no (--with-cuda=no)"
have_cuda_backend=""
CUDA_CPPFLAGS=""
CUDA_LDFLAGS=""
CUDA_LIBS=""
NVCC=""
AS_CASE([$with_cuda],
	[no], [],
	[yes|auto], [spd_cuda_dir=/usr/local/cuda],
	[spd_cuda_dir=$with_cuda])
AS_IF([test "x$with_cuda" != xno], [
	spd_save_CPPFLAGS=$CPPFLAGS
	spd_save_LDFLAGS=$LDFLAGS
	spd_save_LIBS=$LIBS
	CUDA_CPPFLAGS="-I$spd_cuda_dir/include"
	CUDA_LDFLAGS="-L$spd_cuda_dir/lib64 -Wl,-rpath,$spd_cuda_dir/lib64"
	CPPFLAGS="$CPPFLAGS $CUDA_CPPFLAGS"
	LDFLAGS="$LDFLAGS $CUDA_LDFLAGS"
	spd_cuda_ok=yes
	AC_CHECK_HEADERS([cuda_runtime.h cusolverDn.h cublas_v2.h], [],
		[spd_cuda_ok="no (CUDA headers not found in $spd_cuda_dir/include)"])
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		AC_CHECK_LIB([cudart_static], [cudaGetDeviceCount], [:],
			[spd_cuda_ok="no (libcudart_static.a not found in $spd_cuda_dir/lib64)"],
			[-ldl -lrt -lpthread])])
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		AC_CHECK_LIB([cublas], [cublasCreate_v2], [:],
			[spd_cuda_ok="no (libcublas not found in $spd_cuda_dir/lib64)"])])
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		AC_CHECK_LIB([cusolver], [cusolverDnCreate], [:],
			[spd_cuda_ok="no (libcusolver not found in $spd_cuda_dir/lib64)"])])
	dnl The sonames to dlopen: the SONAME of lib64/libX.so, else the
	dnl name its symlink points to.
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		AC_CHECK_TOOL([OBJDUMP], [objdump], [])
		for spd_l in cublas cusolver; do
			spd_f=$spd_cuda_dir/lib64/lib$spd_l.so
			spd_so=""
			AS_IF([test "x$OBJDUMP" != x],
				[spd_so=`$OBJDUMP -p "$spd_f" 2>/dev/null |
				$AWK '$[]1 == "SONAME" { print $[]2; exit }'`])
			AS_IF([test "x$spd_so" = x && test -h "$spd_f"],
				[spd_so=`readlink "$spd_f" | sed 's|.*/||'`])
			AC_MSG_CHECKING([the soname of lib$spd_l])
			AS_IF([test "x$spd_so" = x],
				[AC_MSG_RESULT([unknown])
				 spd_cuda_ok="no (no soname for $spd_f)"
				 break])
			AC_MSG_RESULT([$spd_so])
			eval spd_${spd_l}_soname=\$spd_so
		done])
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		AC_PATH_PROG([NVCC], [nvcc], [], [$spd_cuda_dir/bin])
		AS_IF([test "x$NVCC" = x],
			[spd_cuda_ok="no (nvcc not found in $spd_cuda_dir/bin)"])])
	CPPFLAGS=$spd_save_CPPFLAGS
	LDFLAGS=$spd_save_LDFLAGS
	LIBS=$spd_save_LIBS
	AS_IF([test "x$spd_cuda_ok" = xyes], [
		have_cuda=yes
		have_cuda_msg="yes ($spd_cuda_dir, kernels by $NVCC; loads $spd_cublas_soname, $spd_cusolver_soname at run time)"
		have_cuda_backend=", cuda (cuSOLVER + cuBLAS)"
		dnl The static runtime needs -ldl -lrt -lpthread; nvcc's kernel
		dnl launch stubs need the C++ runtime.
		CUDA_LIBS="-lcudart_static -ldl -lrt -lpthread -lstdc++"
		AC_DEFINE([HAVE_CUDA], [1], [Build the cuSOLVER backend])
		AC_DEFINE_UNQUOTED([CUBLAS_SONAME], ["$spd_cublas_soname"],
			[cuBLAS library loaded at run time])
		AC_DEFINE_UNQUOTED([CUSOLVER_SONAME], ["$spd_cusolver_soname"],
			[cuSOLVER library loaded at run time])
	], [
		CUDA_CPPFLAGS=""
		CUDA_LDFLAGS=""
		have_cuda_msg=$spd_cuda_ok
		AS_IF([test "x$with_cuda" != xauto],
			[AC_MSG_ERROR([--with-cuda=$with_cuda: $spd_cuda_ok])],
			[AC_MSG_WARN([CUDA backend disabled: $spd_cuda_ok])])
	])
])
AC_SUBST([CUDA_CPPFLAGS])
AC_SUBST([CUDA_LDFLAGS])
AC_SUBST([CUDA_LIBS])
AC_SUBST([NVCC])
dnl PTX for sm_75 (JIT on anything newer) plus code for A100 and H100/H200.
AC_ARG_VAR([NVCC_GENCODE], [nvcc -gencode options for the cuda kernels])
AS_IF([test "x$NVCC_GENCODE" = x], [NVCC_GENCODE="-gencode arch=compute_75,code=compute_75 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90"])
])
