/*
 * main.c: the spectrumd command line: `spectrumd scan …` analyses one
 * checkpoint; anything else configures and runs the daemon.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spectrumd/cfg.h"
#include "daemon.h"
#include "scan.h"

static const char main_usage[] =
"usage: spectrumd [--config FILE] [--watch [NAME=]DIR]... [--listen ADDR]\n"
"                 [--db FILE] [--backend auto|cpu|cuda] [options]\n"
"       spectrumd scan PATH [options]     analyse one checkpoint (scan --help)\n"
"       spectrumd --version | --help\n"
"\n"
"Runs in the foreground: watches each run directory (HF Trainer\n"
"output_dir) for new checkpoints, computes the Spectrum SNR of every weight\n"
"matrix, keeps the history in SQLite and serves it over HTTP.\n"
"\n"
"  --config FILE        key = value settings and [run NAME] sections\n"
"  --watch [NAME=]DIR   a run to watch (repeatable)\n"
"  --listen ADDR        HOST:PORT to serve (default 127.0.0.1:8420)\n"
"  --db FILE            database (default $STATE_DIRECTORY/spectrumd.db,\n"
"                       else ./spectrumd.db)\n"
"  --backend B          auto, cpu or cuda (default auto)\n"
"  --threads N          CPU cores to use (default all)\n"
"  --top-percent P      selection per layer type (default 25)\n"
"  --settle-ms N        quiet time before a change is scanned (default 2000)\n"
"  --no-backfill        analyse only the newest checkpoint of each run\n"
"  --no-reuse           solve every matrix, even one whose bytes were\n"
"                       analysed before (default: reuse that result)\n"
"  --api-token T        bearer token required by POST /rescan\n"
"  --web-dir DIR        dashboard files\n"
"  --log-level L        err, warning, notice, info or debug; -v = debug\n"
"Every configuration key is also a flag (--key-name VALUE); see spectrumd(8).\n";

/* Dispatches to scan or the daemon. */
int
main(int argc, char **argv)
{
	struct cfg		c;
	struct spd_errbuf	eb;
	enum cfg_cmd		cmd = CFG_CMD_RUN;

	if (argc >= 2 && strcmp(argv[1], "scan") == 0)
		return scan_main(argc - 1, argv + 1);
	if (cfg_init(&c, &eb) != SPD_OK ||
	    cfg_parse_args(&c, argc, argv, &cmd, &eb) != SPD_OK) {
		fprintf(stderr, "spectrumd: %s\n", eb.msg);
		cfg_cleanup(&c);
		return EXIT_BADINPUT;
	}
	if (cmd == CFG_CMD_HELP || cmd == CFG_CMD_VERSION) {
		if (cmd == CFG_CMD_HELP)
			fputs(main_usage, stdout);
		else
			printf("spectrumd %s\n", PACKAGE_VERSION);
		cfg_cleanup(&c);
		return 0;
	}
	return daemon_main(&c, argc, argv);
}
