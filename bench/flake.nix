{
  description = "nixpush benchmark closures: N store paths, M MiB, half compressible text, half random";

  # Sizes come from the environment (build with --impure): NIXPUSH_BENCH_PATHS (default 100),
  # NIXPUSH_BENCH_MIB (default 500) and NIXPUSH_BENCH_VARIANT (default 1), which changes only the
  # top store path, as a new version of an application does.
  outputs = { self }:
    let
      system = "x86_64-linux";
      env = name: default:
        let v = builtins.getEnv name; in if v == "" then default else v;
      paths = builtins.fromJSON (env "NIXPUSH_BENCH_PATHS" "100");
      mib = builtins.fromJSON (env "NIXPUSH_BENCH_MIB" "500");
      variant = env "NIXPUSH_BENCH_VARIANT" "1";
      # Each dependency holds half random bytes and half text, mib/paths MiB in all.
      halfBytes = mib * 1024 * 1024 / paths / 2;

      dep = i: builtins.derivation {
        name = "bench-${toString mib}m-dep-${toString i}";
        inherit system;
        builder = "/bin/sh";
        args = [ "-e" "-c" ''
          /bin/mkdir "$out"
          /usr/bin/head -c ${toString halfBytes} /dev/urandom > "$out/random.bin"
          /usr/bin/seq -f "%09.0f compressible text of benchmark store path ${toString i}" 1 ${toString (halfBytes / 40 + 1)} \
            | /usr/bin/head -c ${toString halfBytes} > "$out/text.txt"
        '' ];
      };
      deps = builtins.genList dep paths;

      app = builtins.derivation {
        name = "bench-${toString mib}m-app";
        inherit system;
        builder = "/bin/sh";
        depsList = builtins.concatStringsSep "\n" (map toString deps);
        args = [ "-e" "-c" ''
          /bin/mkdir "$out"
          /usr/bin/printf '%s\n' "$depsList" > "$out/deps"
          /usr/bin/printf 'version ${variant}\n' > "$out/version"
        '' ];
      };
      # One store path of 60,000 small text files (about 147 MB), the shape of a Python
      # site-packages or a node_modules: one big layer whose time is all compression.
      smallfiles = builtins.derivation {
        name = "bench-smallfiles";
        inherit system;
        builder = "/bin/sh";
        args = [ "-e" "-c" "/usr/bin/python3 ${./smallfiles.py} $out" ];
      };
    in
    {
      packages.${system} = {
        default = app;
        inherit smallfiles;
      };
    };
}
