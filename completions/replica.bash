# bash completion for replica 0.1.0 (replica completion bash)
_replica() {
  local cur prev cmd opts i
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    --target) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --max-delete) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --budget) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --reason) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --since) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --from) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --to) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --at) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --host) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --serial) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "error warn info verbose debug" -- "$cur")); return ;;
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "--config --json --log-level --help --version" -- "$cur"))
    else COMPREPLY=($(compgen -W "run watch status verify retry ignore new-files check restore where-is manifest adopt tape hash config completion help" -- "$cur")); fi
    return
  fi
  case "$cmd" in
    run) opts="--target --dry-run --max-delete --flush --verbose --config --json --log-level --help" ;;
    watch) opts="--config --json --log-level --help" ;;
    status) opts="--config --json --log-level --help" ;;
    verify) opts="--target --budget --all --no-update --config --json --log-level --help" ;;
    retry) opts="--target --config --json --log-level --help" ;;
    ignore) opts="--target --reason --config --json --log-level --help" ;;
    new-files) opts="--since --target --nul --config --json --log-level --help" ;;
    check) opts="--config --json --log-level --help" ;;
    restore) opts="--from --to --at --force --fsync --config --json --log-level --help" ;;
    where-is) opts="--config --json --log-level --help" ;;
    manifest) opts="--target --config --json --log-level --help" ;;
    adopt) opts="--target --host --dry-run --config --json --log-level --help" ;;
    tape) opts="--target --serial --config --json --log-level --help" ;;
    hash) opts="--check --config --json --log-level --help" ;;
    config) opts="--config --json --log-level --help" ;;
    completion) opts="--config --json --log-level --help" ;;
    help) COMPREPLY=($(compgen -W "run watch status verify retry ignore new-files check restore where-is manifest adopt tape hash config completion" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -F _replica replica
