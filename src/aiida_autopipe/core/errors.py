"""Errors that reach the user: one line that names the field and says the fix."""


class InputError(ValueError):
    """Bad user input, detected before anything is stored in the profile."""

    def __init__(self, field: str, problem: str, fix: str):
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}; fix: {fix}")
