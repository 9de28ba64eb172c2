/*
 * msspd.h - the sub-commands of msspd, each in its own file under
 * src/cmd/msspd/.  main() (src/cmd/msspd.c) dispatches on argv[1].
 */
#ifndef MSSP_CMD_MSSPD_H
#define MSSP_CMD_MSSPD_H

/* `msspd init --data-dir DIR [--demo] [--base-port N] [--bench-users M]`
 * (argv[0] is "init").  Returns the process exit status: 0 done, 1 failed
 * (message on stderr; a half-written DIR is removed), 2 usage error. */
int msspd_init_main(int argc, char **argv);

#endif
