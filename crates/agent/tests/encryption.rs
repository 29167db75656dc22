//! End-to-end encryption: what reaches the S3 server holds no plaintext names or contents.

mod support;

use std::fs;

use support::*;

const SECRET_NAME: &str = "tax-return-2024.pdf";
const SECRET_TEXT: &str = "my bank password is hunter2";

fn crypt_wraps_the_remote_path_and_round_trips(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("vault");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("ENCRYPTED_PASSWORD", &obscure("correct horse"));
    sandbox.set_env("ENCRYPTED_PASSWORD2", &obscure("battery staple"));
    sandbox.write("src", &[(&format!("docs/{SECRET_NAME}"), SECRET_TEXT)]);

    assert_exit(
        &sandbox.run(&["sync-to-remote", "-s", "src", "-d", "vault/alice"]),
        0,
    );
    // The bucket and the path stay readable; everything below is encrypted.
    let stored_dir = bucket.join("alice");
    assert!(stored_dir.is_dir(), "crypt should wrap remote:/vault/alice");
    let stored = everything_stored(&stored_dir);
    assert!(!stored.is_empty());
    assert!(
        !stored.contains(SECRET_NAME) && !stored.contains("docs"),
        "plaintext name stored:\n{stored}"
    );
    assert!(!stored.contains(SECRET_TEXT), "plaintext content stored");

    assert_exit(
        &sandbox.run(&[
            "remote-to-local-sync",
            "-s",
            "vault/alice",
            "-d",
            "restored",
        ]),
        0,
    );
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        vec![(format!("docs/{SECRET_NAME}"), SECRET_TEXT.to_string())]
    );
}

fn with_encrypted_remote_set_the_path_is_taken_inside_it(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("vault");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("ENCRYPTED_REMOTE", "remote:vault/encrypted-root");
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    sandbox.set_env("ENCRYPTED_FILENAME_ENCRYPTION", "standard");
    sandbox.write("src", &[(SECRET_NAME, SECRET_TEXT)]);

    assert_exit(
        &sandbox.run(&["sync-to-remote", "-s", "src", "-d", "projects/alice"]),
        0,
    );
    let stored_dir = bucket.join("encrypted-root");
    let stored = everything_stored(&stored_dir);
    assert!(
        !stored.is_empty(),
        "nothing under the ENCRYPTED_REMOTE root"
    );
    for plain in [SECRET_NAME, SECRET_TEXT, "projects", "alice"] {
        assert!(
            !stored.contains(plain),
            "'{plain}' stored in plaintext:\n{stored}"
        );
    }

    assert_exit(
        &sandbox.run(&[
            "remote-to-local-sync",
            "-s",
            "projects/alice",
            "-d",
            "restored",
        ]),
        0,
    );
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        owned(&[(SECRET_NAME, SECRET_TEXT)])
    );
}

fn enc_param_flags_turn_encryption_on(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("vault");
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[(SECRET_NAME, SECRET_TEXT)]);
    let password = format!("password = {}", obscure("pw"));
    assert_exit(
        &sandbox.run(&[
            "sync-to-remote",
            "-e",
            &password,
            "-s",
            "src",
            "-d",
            "vault/x",
        ]),
        0,
    );
    let stored = everything_stored(&bucket.join("x"));
    assert!(!stored.is_empty() && !stored.contains(SECRET_TEXT) && !stored.contains(SECRET_NAME));
    // One encrypted file and the agent's completion record, encrypted too.
    assert_eq!(fs::read_dir(bucket.join("x")).expect("stored").count(), 2);
    assert!(!stored.contains(RECORD_NAME) && !stored.contains("\"state\""));
}

fn an_encrypted_remote_read_without_its_keys_is_refused_not_restored_as_ciphertext(
    provider: Provider,
) {
    let server = S3Server::start();
    server.bucket("vault");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    sandbox.set_env("ENCRYPTED_PASSWORD2_PLAIN", "battery staple");
    sandbox.write("src", &[(SECRET_NAME, SECRET_TEXT)]);
    sandbox.upload("src", "vault/alice");

    // The Secret with the keys was forgotten: no ENCRYPTED_* at all.
    sandbox
        .env
        .retain(|(key, _)| !key.starts_with("ENCRYPTED_"));
    for volume in ["fresh", "data"] {
        if volume == "data" {
            sandbox.write(volume, &[("mine.db", "state")]);
        }
        let before = read_tree(&sandbox.path(volume));
        let output = sandbox.run(&["remote-to-local-sync", "-s", "vault/alice", "-d", volume]);
        assert_exit(&output, 3);
        assert_logged(&output, &["looks encrypted", "ENCRYPTED_PASSWORD"]);
        assert_eq!(read_tree(&sandbox.path(volume)), before, "{volume}");
    }
    assert!(!sandbox.path("fresh").exists());
}

for_each_provider!(
    an_encrypted_remote_read_without_its_keys_is_refused_not_restored_as_ciphertext,
    crypt_wraps_the_remote_path_and_round_trips,
    with_encrypted_remote_set_the_path_is_taken_inside_it,
    enc_param_flags_turn_encryption_on,
);

#[test]
fn the_periodic_full_sync_of_an_encrypted_remote_still_sends_a_same_size_change() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    let volume = sandbox.write("vol", &[("a.db", "version 1"), ("b.db", "other")]);
    let upload = [
        "sync-to-remote",
        "--full-sync-interval",
        "1s",
        "-s",
        "vol",
        "-d",
        "bkt/app",
    ];
    assert_exit(&sandbox.run(&upload), 0);
    // Crypt keeps no hashes: compared by size alone, this change would be missed.
    std::fs::write(volume.join("a.db"), "version 2").expect("same-size rewrite");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let output = sandbox.run(&upload);
    assert_exit(&output, 0);
    assert_logged(&output, &["a full sync is due"]);
    let restored = sandbox.restore(&[], "bkt/app", "restored");
    assert_eq!(restored, owned(&[("a.db", "version 2"), ("b.db", "other")]));
}
