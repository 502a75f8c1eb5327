/* Certificate names: the DNS names read from each certificate, the
 * groups they make, the SNI tables built from them and the lookup the
 * client-hello callback makes in those tables. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tern/log.h"
#include "tern/tls_ctx.h"
#include "tls_ctx_internal.h"

/* Longest DNS name (RFC 1035 section 2.3.4: 255 octets on the wire, 253
 * characters as text) kept from a certificate or looked up from SNI. */
#define NAME_MAX_LEN 253

/* ASCII only: host names are compared byte-wise, whatever the locale. */
static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---- name matching ---- */

/* host without one trailing dot, lowercased into buf; false when it is
 * empty or too long to be a DNS name. */
static bool normalise_host(const char *host, size_t len, char buf[NAME_MAX_LEN + 1])
{
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (host[i] == '\0')
			return false;
		buf[i] = ascii_lower(host[i]);
	}
	buf[len] = '\0';
	return true;
}

/* The part of a normalised host a wildcard must equal: everything after
 * its first label, or NULL when the host has a single label or an empty
 * first label. */
static const char *after_first_label(const char *host)
{
	const char *dot = strchr(host, '.');
	if (!dot || dot == host || dot[1] == '\0')
		return NULL;
	return dot + 1;
}

/* A wildcard pattern's suffix ("*.example.com" -> "example.com"), or NULL
 * when the pattern is not a usable wildcard. */
static const char *wildcard_suffix(const char *pattern)
{
	if (pattern[0] != '*' || pattern[1] != '.' || pattern[2] == '\0' || pattern[2] == '.' ||
	    strchr(pattern + 2, '*'))
		return NULL;
	return pattern + 2;
}

static bool equal_ignoring_case(const char *a, const char *b)
{
	while (*a && ascii_lower(*a) == ascii_lower(*b)) {
		a++;
		b++;
	}
	return ascii_lower(*a) == ascii_lower(*b);
}

bool tern_tls_name_match(const char *pattern, const char *host)
{
	char h[NAME_MAX_LEN + 1];

	if (!normalise_host(host, strlen(host), h))
		return false;
	if (pattern[0] != '*')
		return !strchr(pattern, '*') && equal_ignoring_case(pattern, h);
	const char *suffix = wildcard_suffix(pattern);
	const char *rest = after_first_label(h);
	return suffix && rest && equal_ignoring_case(suffix, rest);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x->cert < y->cert ? -1 : x->cert > y->cert;
}

static int entry_key_cmp(const void *key, const void *entry)
{
	return strcmp(key, ((const struct name_entry *)entry)->name);
}

static const struct name_entry *find_entry(const struct name_entry *v, size_t n, const char *name)
{
	return n ? bsearch(name, v, n, sizeof(*v), entry_key_cmp) : NULL;
}

bool tls_ctx_find_group(const struct tern_tls_identities *ids, const char *host, size_t len,
			size_t *out_group)
{
	char h[NAME_MAX_LEN + 1];

	if (!normalise_host(host, len, h))
		return false;
	const struct name_entry *e = find_entry(ids->exact, ids->num_exact, h);
	if (!e) {
		const char *rest = after_first_label(h);
		e = rest ? find_entry(ids->wild, ids->num_wild, rest) : NULL;
	}
	if (!e)
		return false;
	*out_group = e->group;
	return true;
}

/* ---- names of a certificate ---- */

/* Adds one name from the certificate, lowercased, unless it is empty, too
 * long, holds a NUL (a forged-name trick) or is there already. */
static int add_name(struct identity *id, const unsigned char *data, int len)
{
	char buf[NAME_MAX_LEN + 1];

	if (len <= 0 || len > NAME_MAX_LEN || memchr(data, '\0', (size_t)len))
		return 0;
	for (int i = 0; i < len; i++)
		buf[i] = ascii_lower((char)data[i]);
	buf[len] = '\0';
	for (size_t i = 0; i < id->num_names; i++)
		if (strcmp(id->names[i], buf) == 0)
			return 0;
	char **names = realloc(id->names, (id->num_names + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	id->names = names;
	names[id->num_names] = strdup(buf);
	if (!names[id->num_names])
		return -ENOMEM;
	id->num_names++;
	return 0;
}

/* The subjectAltName DNS names; the subject CNs only when there are none
 * (RFC 6125 section 6.4.4, as browsers do). */
static int read_names(struct identity *id)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(id->cert, NID_subject_alt_name, NULL, NULL);
	int ret = 0;

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && ret == 0; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type == GEN_DNS)
			ret = add_name(id, ASN1_STRING_get0_data(gn->d.dNSName),
				       ASN1_STRING_length(gn->d.dNSName));
	}
	GENERAL_NAMES_free(sans);
	if (ret < 0 || id->num_names > 0)
		goto out;
	const X509_NAME *subject = X509_get_subject_name(id->cert);
	for (int i = -1; ret == 0;) {
		i = X509_NAME_get_index_by_NID(subject, NID_commonName, i);
		if (i < 0)
			break;
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
		if (len >= 0)
			ret = add_name(id, utf8, len);
		OPENSSL_free(utf8);
	}
out:
	ERR_clear_error();
	return ret;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names sorted and joined: two certificates with equal keys go into
 * one SSL_CTX. */
static int make_name_set(struct identity *id)
{
	size_t len = 1;
	char **sorted = malloc((id->num_names + 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < id->num_names; i++) {
		sorted[i] = id->names[i];
		len += strlen(id->names[i]) + 1;
	}
	qsort(sorted, id->num_names, sizeof(*sorted), str_ptr_cmp);
	id->name_set = malloc(len);
	if (!id->name_set) {
		free(sorted);
		return -ENOMEM;
	}
	char *p = id->name_set;
	for (size_t i = 0; i < id->num_names; i++) {
		size_t n = strlen(sorted[i]);
		memcpy(p, sorted[i], n);
		p[n] = '\n';
		p += n + 1;
	}
	*p = '\0';
	free(sorted);
	return 0;
}

int tls_ctx_read_names(struct identity *id)
{
	int ret = read_names(id);
	if (ret == 0)
		ret = make_name_set(id);
	return ret;
}

/* ---- groups and SNI tables ---- */

/* Puts each certificate in a group: the first earlier one with the same
 * name set, or a new one. Two certificates of one group must differ in key
 * type, since an SSL_CTX holds one per type and a second would silently
 * replace the first. */
static int assign_groups(struct tern_tls_identities *ids, char *err, size_t err_len)
{
	for (size_t i = 0; i < ids->num_certs; i++) {
		struct identity *id = &ids->certs[i];
		size_t j = 0;
		while (j < i && strcmp(ids->certs[j].name_set, id->name_set) != 0)
			j++;
		if (j == i) {
			id->group = ids->num_groups++;
			continue;
		}
		id->group = ids->certs[j].group;
		for (size_t k = j; k < i; k++) {
			const struct identity *other = &ids->certs[k];
			if (other->group == id->group &&
			    EVP_PKEY_get_base_id(other->key) == EVP_PKEY_get_base_id(id->key)) {
				snprintf(err, err_len,
					 "%s: same names and key type (%s) as %s; give one certificate "
					 "per key type for a set of names",
					 id->source, EVP_PKEY_get0_type_name(id->key), other->source);
				return -EIO;
			}
		}
	}
	return 0;
}

/* The SNI tables: every usable name of every certificate, sorted, the
 * first --cert winning a name several groups share. */
static int build_tables(struct tern_tls_identities *ids, char *err, size_t err_len)
{
	size_t total = 0;
	for (size_t i = 0; i < ids->num_certs; i++)
		total += ids->certs[i].num_names;
	ids->exact = calloc(total + 1, sizeof(*ids->exact));
	ids->wild = calloc(total + 1, sizeof(*ids->wild));
	if (!ids->exact || !ids->wild)
		return -ENOMEM;
	for (size_t i = 0; i < ids->num_certs; i++) {
		const struct identity *id = &ids->certs[i];
		size_t usable = 0;
		for (size_t k = 0; k < id->num_names; k++) {
			const char *name = id->names[k];
			const char *suffix = wildcard_suffix(name);
			struct name_entry e = {.name = suffix ? suffix : name, .group = id->group, .cert = i};
			if (suffix)
				ids->wild[ids->num_wild++] = e;
			else if (!strchr(name, '*'))
				ids->exact[ids->num_exact++] = e;
			else
				continue; /* "f*.example.com", "*": matched by nothing */
			usable++;
		}
		/* The default serves whatever matches nothing; any other
		 * certificate must be reachable by some name. */
		if (i > 0 && usable == 0) {
			snprintf(err, err_len,
				 "%s: no DNS name (subjectAltName, or CN without one) to choose it "
				 "by SNI; only the first --cert may have none",
				 id->source);
			return -EIO;
		}
	}
	struct {
		struct name_entry *v;
		size_t *n;
		const char *prefix;
	} tables[] = {{ids->exact, &ids->num_exact, ""}, {ids->wild, &ids->num_wild, "*."}};
	for (size_t t = 0; t < 2; t++) {
		struct name_entry *v = tables[t].v;
		size_t n = *tables[t].n, kept = 0;
		qsort(v, n, sizeof(*v), entry_cmp);
		for (size_t k = 0; k < n; k++) {
			if (kept > 0 && strcmp(v[kept - 1].name, v[k].name) == 0) {
				if (v[kept - 1].group != v[k].group)
					tern_log(TERN_LOG_WARN, "%s: name %s%s is served by %s, the "
						 "earlier --cert with it",
						 ids->certs[v[k].cert].source, tables[t].prefix, v[k].name,
						 ids->certs[v[kept - 1].cert].source);
				continue;
			}
			v[kept++] = v[k];
		}
		*tables[t].n = kept;
	}
	return 0;
}

int tls_ctx_index_names(struct tern_tls_identities *ids, char *err, size_t err_len)
{
	int ret = assign_groups(ids, err, err_len);
	if (ret == 0)
		ret = build_tables(ids, err, err_len);
	return ret;
}
