"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class AmpnetError(Exception):
    """A problem the user can fix; ``str(err)`` names the file and what to do."""


class ModelFileError(AmpnetError):
    """A model file that cannot be loaded: unknown format, missing key, bad shape, ..."""

    def __init__(self, path, field, problem):
        self.path, self.field, self.problem = str(path), field, problem
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + problem)
