//! The HTTP suite on the embedded redb store: one fresh file per test
//! ([`suite::redb`]).

mod suite;

use suite::redb;

http_suite!(redb);
