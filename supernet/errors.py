"""Errors the user can fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
  """A problem with the user's input (config, arch file, dataset, workdir).

  Raised anywhere in the library when the cause is something the user supplied;
  the command-line interface catches it, prints ``error: <message>`` on one line
  and exits with status 2 without touching existing outputs.
  """
