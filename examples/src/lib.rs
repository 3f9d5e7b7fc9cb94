//! Nothing to use here: this package holds runnable examples (`examples/`), so that an example may drive both the
//! blocking and the async driver while neither driver depends on the other.

/// The root README's examples, which use both drivers, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
