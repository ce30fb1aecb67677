/*
 * scan.h: `spectrumd scan PATH …`: one analysis without the daemon, writing
 * the reference script's files.
 */
#ifndef SPECTRUMD_SCAN_H
#define SPECTRUMD_SCAN_H

/* Exit codes of the command line. */
#define EXIT_BADINPUT	2

/* Runs the scan command; argv[0] is "scan". Returns the exit status. */
int	scan_main(int argc, char **argv);

#endif
