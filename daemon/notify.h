/*
 * notify.h: the systemd notification protocol (sd_notify(3)) without
 * libsystemd: one datagram to $NOTIFY_SOCKET per message.
 */
#ifndef SPECTRUMD_NOTIFY_H
#define SPECTRUMD_NOTIFY_H

/*
 * Sends msg ("READY=1", "STATUS=…", "STOPPING=1"). Does nothing when
 * NOTIFY_SOCKET is unset. Returns 0, or -1 when sending failed.
 */
int	notify_send(const char *msg);

#endif
