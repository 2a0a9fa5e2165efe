"""Building and running the agent outside a plain host install: the image recipe (`build_image`) and
the Debian root filesystem it shares with the test suite's PostgreSQL image (`debian_rootfs`).

Not installed with the agent: run from a checkout (`deploy/build-image`)."""
