/*
 * export.h - copies of each stored message as files, beside the database: a Maildir
 * (--maildir DIR: tmp/new/cur, file written in tmp, fsync'd, renamed into new), an mbox
 * (--mbox FILE: mboxrd "From " lines and ">From " quoting, appended under a lock and
 * fsync'd) and one .eml per message (--eml-dir DIR: "<id>.eml", tmp name + fsync +
 * rename + directory fsync). File names come only from our ids, never from anything a
 * client sent (ids of [A-Za-z0-9._-], at most 128 characters, not starting with '.').
 * The mbox "From " line names the sender (MAILER-DAEMON for <>; spaces and controls
 * become '_'). A file is either absent or complete. Used by the ingest thread only.
 */
#ifndef MAILSINK_EXPORT_H
#define MAILSINK_EXPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct exporter exporter;

/* Any of the three may be NULL (not exported). Creates the directories as needed.
   Returns NULL with a message in err ("--maildir /x: Permission denied"); returns a
   valid exporter doing nothing when all three are NULL. */
exporter *export_open(const char *maildir, const char *mbox, const char *eml_dir, char *err,
                      size_t errsize);
void export_close(exporter *ex);

/* Write one message (raw = what is stored, trace headers included) to every target.
   0, or -1 with a message in err (the others are still attempted). */
int export_write(exporter *ex, const char *id, const char *sender, int64_t received_ms,
                 const char *raw, size_t len, char *err, size_t errsize);

#endif
