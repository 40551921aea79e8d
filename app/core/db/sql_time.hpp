#pragma once

// The one timestamp format of the API, made in SQL: RFC 3339 in UTC with milliseconds
// (`2026-11-23T10:01:00.000Z`), for a timestamptz column or expression.
#define SQL_UTC_TIME(column) \
    "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
