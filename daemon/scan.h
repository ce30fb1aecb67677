/*
 * scan.h: `spectrumd scan PATH …`: one analysis without the daemon, writing
 * the reference script's files.
 */
#ifndef SPECTRUMD_SCAN_H
#define SPECTRUMD_SCAN_H

/* Exit codes of the command line. */
#define EXIT_BADINPUT	2
/* Outputs written, but some matrices had NaN/Inf weights or a NaN SNR. */
#define EXIT_NONFINITE	3

/* Runs the scan command; argv[0] is "scan". Returns the exit status. */
int	scan_main(int argc, char **argv);

#endif
