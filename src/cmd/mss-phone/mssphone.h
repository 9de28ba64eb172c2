/*
 * mssphone.h - the parts of mss-phone (src/cmd/mss-phone.c is main()):
 * run.c wires devices (phone/app.h) to WebSockets, timers, the push port
 * and signals on one event base; ui.c is the interactive prompt.
 */
#ifndef MSSP_CMD_MSSPHONE_H
#define MSSP_CMD_MSSPHONE_H

#include <stdbool.h>

struct event_base;
struct phone_dev;

struct mp_opts {
	const char *mo_data_dir; /* the msspd data directory               */
	bool mo_demo;		 /* answer as the demo users do            */
	const char *mo_only;	 /* "+MSISDN[,+MSISDN...]" or NULL: all    */
	const char *mo_log;	 /* event log file, NULL: stdout           */
};

/* Run until SIGINT/SIGTERM.  The process exit status: 0, or 1 when the
 * configuration or the devices could not be loaded (message on stderr). */
int mp_run(const struct mp_opts *o);

/* ---- mss-phone activate (activate.c) ----------------------------------- */

struct mp_activate_opts {
	const char *ma_phones;	/* the phones directory (phone.conf inside) */
	const char *ma_msisdn;
	const char *ma_code;	/* NULL: asked on the terminal              */
	const char *ma_pin;	/* demo PIN written to device.conf (NULL:
				 * 123456)                                  */
	const char *ma_puk;	/* demo PUK (NULL: random, printed once)    */
	bool ma_no_secrets;	/* write no demo PIN / PUK at all           */
	bool ma_force;		/* replace an existing phone directory      */
};

/* Bind a new device to the user by activation code (docs/internals/
 * me.md).  Exit status: 0 activated (the line "activated <msisdn> device
 * <id>" on stdout), 1 refused or failed (message on stderr). */
int mp_activate(const struct mp_activate_opts *o);

/* ---- interactive prompts (ui.c) ---------------------------------------- */

struct mp_ui;

/* Read answers from stdin through an event on `base` (borrowed).  NULL on
 * memory shortage. */
struct mp_ui *mp_ui_new(struct event_base *base);
/* A new prompt of `d` (borrowed for the ui's life): shown now, or queued
 * behind the one on screen. */
void mp_ui_enqueue(struct mp_ui *ui, struct phone_dev *d, const char *nonce);
/* A registration job of `d` waiting for the user (phone_dev_job). */
void mp_ui_enqueue_job(struct mp_ui *ui, struct phone_dev *d, const char *job);
/* The prompt (or job) went away (cancel, ack, job_ack): off the screen or
 * out of the queue. */
void mp_ui_withdraw(struct mp_ui *ui, struct phone_dev *d, const char *nonce);
/* Show the AP's receipt text. */
void mp_ui_receipt(struct mp_ui *ui, struct phone_dev *d, const char *nonce, const char *msg);
/* Stop reading, restore the terminal, wipe the input.  Accepts NULL. */
void mp_ui_free(struct mp_ui *ui);

#endif
