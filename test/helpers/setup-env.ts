// Every test repository is a real git repository; give git an identity and a
// default branch through the environment so tests never depend on (or change)
// the machine's global git config. Children inherit these variables.
process.env.GIT_AUTHOR_NAME ??= "troupe test";
process.env.GIT_AUTHOR_EMAIL ??= "test@troupe.invalid";
process.env.GIT_COMMITTER_NAME ??= "troupe test";
process.env.GIT_COMMITTER_EMAIL ??= "test@troupe.invalid";
process.env.GIT_CONFIG_NOSYSTEM = "1";
// Keep test logs quiet unless someone asks for them.
process.env.TROUPE_LOG_LEVEL ??= "silent";
