#!/bin/sh
# The stand-in for the entrypoint of Lambda's images (public.ecr.aws/lambda/python3.13
# starts the runtime interface client here). Every container the tool starts names its
# own entrypoint (`docker run --entrypoint ...`); reaching this script means one did not.
echo "lambda-entrypoint.sh: the tool forgot to override the entrypoint (docker run without --entrypoint; arguments: $*)" >&2
exit 86
