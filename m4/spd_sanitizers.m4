dnl SPD_SANITIZERS: --enable-sanitizers adds ASan + UBSan to every object.
AC_DEFUN([SPD_SANITIZERS], [
AC_ARG_ENABLE([sanitizers],
	[AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
	[], [enable_sanitizers=no])
SAN_CFLAGS=""
AS_IF([test "x$enable_sanitizers" = xyes], [
	SAN_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
])
AC_SUBST([SAN_CFLAGS])
])

dnl SPD_FUZZING: --enable-fuzzing builds the libFuzzer targets (needs clang).
AC_DEFUN([SPD_FUZZING], [
AC_ARG_ENABLE([fuzzing],
	[AS_HELP_STRING([--enable-fuzzing], [build libFuzzer targets (CC=clang)])],
	[], [enable_fuzzing=no])
enable_fuzzing_msg=no
AS_IF([test "x$enable_fuzzing" = xyes], [
	spd_save_CFLAGS=$CFLAGS
	CFLAGS="$CFLAGS -fsanitize=fuzzer-no-link"
	AC_MSG_CHECKING([whether $CC supports -fsanitize=fuzzer])
	AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
		[AC_MSG_RESULT([yes])],
		[AC_MSG_RESULT([no]); AC_MSG_ERROR([--enable-fuzzing needs clang with libFuzzer (CC=clang)])])
	CFLAGS=$spd_save_CFLAGS
	enable_fuzzing_msg="yes (libFuzzer)"
])
AM_CONDITIONAL([ENABLE_FUZZING], [test "x$enable_fuzzing" = xyes])
])
