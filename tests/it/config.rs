//! Configuration layering as seen through `mercato config`, and refusal of invalid
//! configuration at start.

use crate::support::{assert_refused, mercato, run_to_exit, write_file};

fn effective_config(configure: impl FnOnce(&mut std::process::Command)) -> String {
    let mut command = mercato();
    command.arg("config");
    configure(&mut command);
    let finished = run_to_exit(command);
    assert_eq!(
        finished.status.code(),
        Some(0),
        "stderr:\n{}",
        finished.stderr
    );
    finished.stdout
}

#[test]
fn defaults_are_printed_when_nothing_overrides_them() {
    let text = effective_config(|_| {});
    for line in [
        r#"listen = "127.0.0.1:8080""#,
        r#"data_dir = "mercato-data""#,
        "shards_initial = 4",
        r#"format = "text""#,
    ] {
        assert!(
            text.lines().any(|printed| printed == line),
            "{line:?} not in:\n{text}"
        );
    }
}

#[test]
fn file_beats_defaults_env_beats_file_flag_beats_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(
        dir.path(),
        "mercato.toml",
        "listen = \"127.0.0.1:1001\"\ndata_dir = \"/srv/from-file\"\n[storage]\nshards_initial = 8\n[log]\nformat = \"json\"\n",
    );

    let text = effective_config(|command| {
        command.arg("--config").arg(&file);
    });
    assert!(text.contains(r#"listen = "127.0.0.1:1001""#), "{text}");
    assert!(text.contains("shards_initial = 8"), "{text}");
    assert!(text.contains(r#"format = "json""#), "{text}");

    let text = effective_config(|command| {
        command
            .arg("--config")
            .arg(&file)
            .env("MERCATO_LISTEN", "127.0.0.1:1002")
            .env("MERCATO_STORAGE_SHARDS_INITIAL", "16");
    });
    assert!(text.contains(r#"listen = "127.0.0.1:1002""#), "{text}");
    assert!(text.contains("shards_initial = 16"), "{text}");
    assert!(
        text.contains(r#"data_dir = "/srv/from-file""#),
        "file values not overridden stay:\n{text}"
    );
    assert!(text.contains(r#"format = "json""#), "{text}");

    let text = effective_config(|command| {
        command
            .arg("--config")
            .arg(&file)
            .env("MERCATO_LISTEN", "127.0.0.1:1002")
            .args(["--listen", "127.0.0.1:1003", "--data-dir", "/srv/from-flag"]);
    });
    assert!(text.contains(r#"listen = "127.0.0.1:1003""#), "{text}");
    assert!(text.contains(r#"data_dir = "/srv/from-flag""#), "{text}");
    assert!(text.contains("shards_initial = 8"), "{text}");
}

#[test]
fn printed_configuration_is_a_valid_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = effective_config(|command| {
        command
            .env("MERCATO_HTTP_REQUEST_BODY_BYTES_MAX", "3MiB")
            .env("MERCATO_TLS_SELF_SIGNED", "true");
    });
    assert!(
        first.contains(r#"request_body_bytes_max = "3MiB""#),
        "{first}"
    );
    assert!(first.contains("self_signed = true"), "{first}");
    let file = write_file(dir.path(), "printed.toml", &first);
    let second = effective_config(|command| {
        command.arg("--config").arg(&file);
    });
    assert_eq!(first, second);
}

fn refused_serve(configure: impl FnOnce(&mut std::process::Command), needle: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = mercato();
    // Listen on a free port through the lowest layer that tests do not override, so that a
    // configuration wrongly accepted would still not collide with anything.
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("MERCATO_LISTEN", "127.0.0.1:0");
    configure(&mut command);
    assert_refused(&run_to_exit(command), needle);
}

#[test]
fn bad_listen_address_is_refused_naming_the_key() {
    refused_serve(
        |command| {
            command.args(["--listen", "localhost:http"]);
        },
        "`listen`",
    );
    refused_serve(
        |command| {
            command.env("MERCATO_LISTEN", "127.0.0.1:99999");
        },
        "MERCATO_LISTEN",
    );
}

#[test]
fn unknown_key_in_file_is_refused_naming_the_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "typo.toml", "[storage]\nshard_count = 3\n");
    refused_serve(
        |command| {
            command.arg("--config").arg(&file);
        },
        "storage.shard_count",
    );
    refused_serve(
        |command| {
            command.arg("--config").arg(&file);
        },
        "typo.toml",
    );
}

#[test]
fn unknown_environment_key_is_refused_naming_the_variable() {
    refused_serve(
        |command| {
            command.env("MERCATO_STORAGE_SHARDS", "8");
        },
        "MERCATO_STORAGE_SHARDS",
    );
}

#[test]
fn negative_size_is_refused_naming_the_key() {
    refused_serve(
        |command| {
            command.env("MERCATO_HTTP_REQUEST_BODY_BYTES_MAX", "-1");
        },
        "http.request_body_bytes_max",
    );
}

#[test]
fn out_of_range_shard_count_is_refused_naming_the_key() {
    refused_serve(
        |command| {
            command.env("MERCATO_STORAGE_SHARDS_INITIAL", "0");
        },
        "storage.shards_initial",
    );
    refused_serve(
        |command| {
            command.env("MERCATO_STORAGE_SHARDS_INITIAL", "257");
        },
        "storage.shards_initial",
    );
}

#[test]
fn tls_cert_without_key_is_refused() {
    refused_serve(
        |command| {
            command.env("MERCATO_TLS_CERT", "/nonexistent/cert.pem");
        },
        "tls.key",
    );
}

#[test]
fn missing_config_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.toml");
    refused_serve(
        |command| {
            command.arg("--config").arg(&missing);
        },
        "absent.toml",
    );
}
