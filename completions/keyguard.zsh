
#compdef keyguard

_keyguard_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _KEYGUARD_COMPLETE=complete_zsh keyguard)
}

compdef _keyguard_completion keyguard

