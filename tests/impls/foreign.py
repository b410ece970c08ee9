"""A class the test process never imports: a worker must not send one of these back."""


class Thing:
    pass
