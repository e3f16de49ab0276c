//! The `evidence-operator` binary: see `evidence-operator --help`.

fn main() -> std::process::ExitCode {
    evidence_operator::cli::main()
}
