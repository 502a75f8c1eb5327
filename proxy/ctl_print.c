/* `tern ctl`: the reply shown, readable by default (a summary of fields,
 * then tables of the arrays) or as the raw JSON line with --json. The
 * reply comes from another process: it is parsed strictly
 * (json_reader.c) and every piece of text is shown with control
 * characters escaped, so a reply cannot drive the terminal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_internal.h"
#include "json_reader.h"
#include "tern/json.h"

/* Longest table cell; longer ones are cut and end in "...". */
#define CELL_MAX 256

bool tern_ctl_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Copies len bytes of s to out (out_len > 4) with control characters as
 * \xNN; cut at a UTF-8 boundary with "..." when it does not fit. Returns
 * the bytes written, NUL excluded. */
size_t tern_ctl_escape_into(const char *s, size_t len, char *out, size_t out_len)
{
	size_t used = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char piece[5];
		size_t piece_len = 1;
		if (tern_ctl_is_control(c))
			piece_len = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", c);
		else
			piece[0] = (char)c;
		if (used + piece_len + 4 > out_len) {
			while (used > 0 && ((unsigned char)out[used - 1] & 0xc0) == 0x80)
				used--; /* continuation bytes of a cut character */
			if (used > 0 && (unsigned char)out[used - 1] >= 0xc0)
				used--; /* and its lead byte */
			memcpy(out + used, "...", 3);
			used += 3;
			break;
		}
		memcpy(out + used, piece, piece_len);
		used += piece_len;
	}
	out[used] = '\0';
	return used;
}

/* Prints len bytes of s with control characters as \xNN. */
void tern_ctl_put_escaped(FILE *f, const char *s, size_t len)
{
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		if (!tern_ctl_is_control((unsigned char)s[i]))
			continue;
		fwrite(s + run, 1, i - run, f);
		fprintf(f, "\\x%02x", (unsigned char)s[i]);
		run = i + 1;
	}
	fwrite(s + run, 1, len - run, f);
}

/* An array of strings (certs' names) as one cell: joined with ",",
 * escaped, cut like any cell. False when v is not one. */
static bool format_string_list(const struct tern_json_value *v, char *out, size_t out_len,
			       size_t *out_n)
{
	char joined[CELL_MAX + 4];
	size_t used = 0;

	if (v->type != TERN_JSON_ARRAY || v->child == NULL)
		return false;
	for (const struct tern_json_value *c = v->child; c != NULL; c = c->next)
		if (c->type != TERN_JSON_STRING)
			return false;
	/* Up to one byte more than a cell holds, so that a longer list is
	 * cut with "..." as any cell is. */
	for (const struct tern_json_value *c = v->child; c != NULL && used <= CELL_MAX; c = c->next) {
		size_t room = CELL_MAX + 1 - used;
		size_t n = c->text_len < room ? c->text_len : room;
		memcpy(joined + used, c->text, n);
		used += n;
		if (c->next != NULL && used <= CELL_MAX)
			joined[used++] = ',';
	}
	*out_n = tern_ctl_escape_into(joined, used, out, out_len);
	return true;
}

/* A scalar's text for a cell or a "key: value" line: strings escaped,
 * null, "" and missing as "-", a list of strings joined with ",", other
 * arrays and objects as compact JSON. */
static size_t format_cell(const struct tern_json_value *v, char *out, size_t out_len)
{
	size_t list_len;

	if (v == NULL || v->type == TERN_JSON_NULL || (v->type == TERN_JSON_STRING && v->text_len == 0))
		return tern_ctl_escape_into("-", 1, out, out_len);
	switch (v->type) {
	case TERN_JSON_TRUE:
		return tern_ctl_escape_into("true", 4, out, out_len);
	case TERN_JSON_FALSE:
		return tern_ctl_escape_into("false", 5, out, out_len);
	case TERN_JSON_NUMBER:
	case TERN_JSON_STRING:
		return tern_ctl_escape_into(v->text, v->text_len, out, out_len);
	default:
		break;
	}
	if (format_string_list(v, out, out_len, &list_len))
		return list_len;
	struct tern_json j;
	size_t n;
	tern_json_init(&j);
	tern_json_write_value(&j, v);
	if (tern_json_finish(&j) == 0)
		n = tern_ctl_escape_into(j.buf, j.len, out, out_len);
	else
		n = tern_ctl_escape_into("?", 1, out, out_len);
	tern_json_free(&j);
	return n;
}

/* Terminal columns of UTF-8 text: one per character. */
static size_t text_width(const char *s, size_t len)
{
	size_t w = 0;

	for (size_t i = 0; i < len; i++)
		w += ((unsigned char)s[i] & 0xc0) != 0x80;
	return w;
}

/* A value on a "key: value" line. Unlike a cell, never cut. */
static void put_value(FILE *f, const struct tern_json_value *v)
{
	if (v->type == TERN_JSON_STRING) {
		tern_ctl_put_escaped(f, v->text, v->text_len);
		return;
	}
	if (v->type == TERN_JSON_ARRAY) {
		/* A list of words (help's commands) reads best as one. */
		bool scalars = v->child != NULL;
		for (const struct tern_json_value *c = v->child; c != NULL; c = c->next)
			scalars = scalars && c->type != TERN_JSON_ARRAY && c->type != TERN_JSON_OBJECT;
		if (scalars) {
			for (const struct tern_json_value *c = v->child; c != NULL; c = c->next) {
				if (c != v->child)
					fputs(", ", f);
				put_value(f, c);
			}
			return;
		}
	}
	if (v->type == TERN_JSON_NUMBER) {
		tern_ctl_put_escaped(f, v->text, v->text_len);
		return;
	}
	struct tern_json j;
	tern_json_init(&j);
	tern_json_write_value(&j, v);
	if (tern_json_finish(&j) == 0)
		tern_ctl_put_escaped(f, j.buf, j.len);
	tern_json_free(&j);
}

/* Every member but "ok", one "key: value" line each; "ok" alone. */
static void print_fields(const struct tern_json_value *root, FILE *out)
{
	bool any = false;

	for (const struct tern_json_value *m = root->child; m != NULL; m = m->next) {
		if (m->key_len == 2 && memcmp(m->key, "ok", 2) == 0)
			continue;
		tern_ctl_put_escaped(out, m->key, m->key_len);
		fputs(": ", out);
		put_value(out, m);
		fputc('\n', out);
		any = true;
	}
	if (!any)
		fputs("ok\n", out);
}

struct column {
	const char *name;
	bool right; /* numbers line up on the right */
};

static const struct column conn_columns[] = {
	{"id", true},         {"worker", true},       {"peer", false},     {"sni", false},
	{"version", false},   {"age_ms", true},       {"bytes_in", true},  {"bytes_out", true},
	{"tickets_sent", true}, {"num_tickets", true},
};

#define NUM_CONN_COLUMNS (sizeof(conn_columns) / sizeof(conn_columns[0]))

/* `keys`: one row per ticket key (a null since or age prints as "-"). */
static const struct column key_columns[] = {
	{"fingerprint", false}, {"role", false}, {"since", false}, {"age_s", true},
};

#define NUM_KEY_COLUMNS (sizeof(key_columns) / sizeof(key_columns[0]))

/* `keys`, after the keys: which key set generation each worker uses, and
 * whether the newest is queued to it (false: its queue was full, retried). */
static const struct column key_worker_columns[] = {
	{"worker", true}, {"generation", true}, {"queued", false},
};

#define NUM_KEY_WORKER_COLUMNS (sizeof(key_worker_columns) / sizeof(key_worker_columns[0]))

/* `certs`: one row per certificate, its names last (the widest). */
static const struct column cert_columns[] = {
	{"cert", false},        {"default", false},     {"key_type", false},
	{"key_bits", true},     {"not_after", false},   {"days_left", true},
	{"ocsp_status", false}, {"ocsp_next_update", false}, {"names", false},
};

#define NUM_CERT_COLUMNS (sizeof(cert_columns) / sizeof(cert_columns[0]))
/* The widest table. */
#define MAX_COLUMNS NUM_CONN_COLUMNS
_Static_assert(NUM_KEY_COLUMNS <= MAX_COLUMNS, "raise MAX_COLUMNS");
_Static_assert(NUM_KEY_WORKER_COLUMNS <= MAX_COLUMNS, "raise MAX_COLUMNS");
_Static_assert(NUM_CERT_COLUMNS <= MAX_COLUMNS, "raise MAX_COLUMNS");

static void put_cell(FILE *out, const char *text, size_t len, size_t width, bool right, bool last)
{
	size_t pad = width - text_width(text, len);

	if (right)
		fprintf(out, "%*s", (int)pad, "");
	fwrite(text, 1, len, out);
	if (!right && !last)
		fprintf(out, "%*s", (int)pad, "");
	if (!last)
		fputs("  ", out);
}

/* A table (`conns`, `keys`, `certs`): a header and one row per element of rows,
 * columns as wide as their widest cell (two passes, so no row is kept). */
static void print_table(const struct tern_json_value *rows, const struct column *columns,
			size_t num_columns, FILE *out)
{
	size_t width[MAX_COLUMNS];
	char cell[CELL_MAX + 4];

	for (size_t c = 0; c < num_columns; c++)
		width[c] = strlen(columns[c].name);
	for (const struct tern_json_value *row = rows->child; row != NULL; row = row->next) {
		for (size_t c = 0; c < num_columns; c++) {
			size_t n = format_cell(tern_json_member(row, columns[c].name), cell, sizeof(cell));
			size_t w = text_width(cell, n);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t c = 0; c < num_columns; c++)
		put_cell(out, columns[c].name, strlen(columns[c].name), width[c], columns[c].right,
			 c + 1 == num_columns);
	fputc('\n', out);
	for (const struct tern_json_value *row = rows->child; row != NULL; row = row->next) {
		for (size_t c = 0; c < num_columns; c++) {
			size_t n = format_cell(tern_json_member(row, columns[c].name), cell, sizeof(cell));
			put_cell(out, cell, n, width[c], columns[c].right, c + 1 == num_columns);
		}
		fputc('\n', out);
	}
}

/* `keys`' generation lines and worker table, when the reply has them (a
 * tern from before they existed has not). */
static void print_key_workers(const struct tern_json_value *root, FILE *out)
{
	static const char *const scalars[] = {"generation", "workers_behind"};
	const struct tern_json_value *workers = tern_json_member(root, "workers");

	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		const struct tern_json_value *v = tern_json_member(root, scalars[i]);
		if (v == NULL)
			continue;
		fprintf(out, "%s: ", scalars[i]);
		put_value(out, v);
		fputc('\n', out);
	}
	if (workers != NULL && workers->type == TERN_JSON_ARRAY)
		print_table(workers, key_worker_columns, NUM_KEY_WORKER_COLUMNS, out);
}

int tern_ctl_print_reply(const char *command, bool json, const char *reply, size_t len, FILE *out, FILE *err)
{
	struct tern_json_doc doc;
	const struct tern_json_value *ok = NULL;
	const char *problem = NULL;
	int status = TERN_CTL_EXIT_FAILED;

	int rc = tern_json_parse(reply, len, &doc);
	if (rc == -ENOMEM)
		problem = "cannot read the reply: out of memory";
	else if (rc < 0)
		problem = "the reply is not valid JSON";
	else if (doc.root->type != TERN_JSON_OBJECT)
		problem = "the reply is not a JSON object";
	else if ((ok = tern_json_member(doc.root, "ok")) == NULL ||
		 (ok->type != TERN_JSON_TRUE && ok->type != TERN_JSON_FALSE))
		problem = "the reply has no \"ok\": true or false";
	if (problem != NULL) {
		if (json)
			fwrite(reply, 1, len, out);
		else
			tern_ctl_put_escaped(out, reply, len);
		fputc('\n', out);
		fprintf(err, "tern ctl: %s\n", problem);
		goto out;
	}

	if (ok->type == TERN_JSON_TRUE)
		status = TERN_CTL_EXIT_OK;
	if (json) {
		fwrite(reply, 1, len, out);
		fputc('\n', out);
		goto out;
	}
	if (ok->type == TERN_JSON_FALSE) {
		const struct tern_json_value *message = tern_json_member(doc.root, "error");
		fputs("error: ", err);
		if (message != NULL)
			put_value(err, message);
		else
			fputs("(no message)", err);
		fputc('\n', err);
		goto out;
	}
	const struct tern_json_value *conns = tern_json_member(doc.root, "conns");
	const struct tern_json_value *keys = tern_json_member(doc.root, "keys");
	const struct tern_json_value *source = tern_json_member(doc.root, "source");
	const struct tern_json_value *certs = tern_json_member(doc.root, "certs");
	if (command != NULL && strcmp(command, "conns") == 0 && conns != NULL && conns->type == TERN_JSON_ARRAY) {
		print_table(conns, conn_columns, NUM_CONN_COLUMNS, out);
	} else if (command != NULL && strcmp(command, "keys") == 0 && keys != NULL &&
		   keys->type == TERN_JSON_ARRAY) {
		if (source != NULL) {
			fputs("source: ", out);
			put_value(out, source);
			fputc('\n', out);
		}
		print_table(keys, key_columns, NUM_KEY_COLUMNS, out);
		print_key_workers(doc.root, out);
	} else if (command != NULL && strcmp(command, "certs") == 0 && certs != NULL &&
		   certs->type == TERN_JSON_ARRAY) {
		print_table(certs, cert_columns, NUM_CERT_COLUMNS, out);
	} else {
		print_fields(doc.root, out);
	}
out:
	tern_json_doc_free(&doc);
	return status;
}
