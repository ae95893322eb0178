//! The real `bootstrap` served by a Lambda Runtime API on loopback, with S3 and Glue from the
//! test server (moto) that scripts/test starts.

mod function;
