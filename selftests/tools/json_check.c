// SPDX-License-Identifier: MIT
/*
 * json_check.c - does a file hold exactly one valid JSON value (RFC 8259)?
 * For the VM suite, which has no python: selftests/vm/tools_kmod.sh checks
 * urt-trace files with it, and their content line by line with awk.
 *
 *   json_check FILE    exit 0 and "json_check: FILE: valid, N bytes",
 *                      or exit 1 and where the first error is
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s, *end;
static const char *err;

#define MAX_DEPTH 256

static void ws(void)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
}

static bool fail(const char *why)
{
	if (!err)
		err = why;
	return false;
}

static bool lit(const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(end - s) < n || memcmp(s, w, n))
		return fail("bad literal");
	s += n;
	return true;
}

static bool hex4(void)
{
	for (int i = 0; i < 4; i++, s++)
		if (s >= end || !strchr("0123456789abcdefABCDEF", *s))
			return fail("bad \\u escape");
	return true;
}

static bool string(void)
{
	s++;	/* '"' */
	while (s < end && *s != '"') {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20)
			return fail("control character in a string");
		if (c == '\\') {
			s++;
			if (s >= end)
				break;
			if (*s == 'u') {
				s++;
				if (!hex4())
					return false;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *s))
				return fail("bad escape");
		}
		s++;
	}
	if (s >= end)
		return fail("unterminated string");
	s++;
	return true;
}

static bool digits(void)
{
	if (s >= end || *s < '0' || *s > '9')
		return fail("digit expected");
	while (s < end && *s >= '0' && *s <= '9')
		s++;
	return true;
}

static bool number(void)
{
	if (*s == '-')
		s++;
	if (s < end && *s == '0')
		s++;
	else if (!digits())
		return false;
	if (s < end && *s == '.') {
		s++;
		if (!digits())
			return false;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		if (!digits())
			return false;
	}
	return true;
}

static bool value(int depth);

/* object or array: open is '{' or '[' */
static bool container(int depth, char close)
{
	s++;
	ws();
	if (s < end && *s == close) {
		s++;
		return true;
	}
	for (;;) {
		ws();
		if (close == '}') {
			if (s >= end || *s != '"')
				return fail("member name expected");
			if (!string())
				return false;
			ws();
			if (s >= end || *s != ':')
				return fail("':' expected");
			s++;
		}
		if (!value(depth + 1))
			return false;
		ws();
		if (s < end && *s == ',') {
			s++;
			continue;
		}
		if (s < end && *s == close) {
			s++;
			return true;
		}
		return fail(close == '}' ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static bool value(int depth)
{
	if (depth > MAX_DEPTH)
		return fail("nested too deep");
	ws();
	if (s >= end)
		return fail("value expected");
	switch (*s) {
	case '{':
		return container(depth, '}');
	case '[':
		return container(depth, ']');
	case '"':
		return string();
	case 't':
		return lit("true");
	case 'f':
		return lit("false");
	case 'n':
		return lit("null");
	default:
		if (*s == '-' || (*s >= '0' && *s <= '9'))
			return number();
		return fail("value expected");
	}
}

int main(int argc, char **argv)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: json_check FILE\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			buf = realloc(buf, cap);
			if (!buf)
				return 1;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	fclose(f);
	s = buf;
	end = buf + len;
	if (value(0)) {
		ws();
		if (s != end)
			fail("trailing data after the value");
	}
	if (err) {
		fprintf(stderr, "json_check: %s: invalid at byte %zu: %s\n", argv[1],
			(size_t)(s - buf), err);
		return 1;
	}
	printf("json_check: %s: valid, %zu bytes\n", argv[1], len);
	free(buf);
	return 0;
}
