#!/usr/bin/env bash
# vlunctl's command line: help, version, and every kind of usage error is
# exit 2 with one clear line, before any pool is touched.
. "$(dirname "$0")/lib.sh"

VC_MULTILINE=1 vc 2
grep -q 'SYNOPSIS' "$T/err" && ok || bad "usage on stderr without arguments"
out_empty

vc 0 help
for w in 'pool create' 'pool show' 'pool add-member' 'vdisk create' 'vdisk list' \
	'vdisk show' 'vdisk resize' 'vdisk delete' 'EXIT STATUS' 'POOL SPEC' '--json' '--force'; do
	out_has "$w"
done
out_has '^ +6 +refused'
vc 0 --help
out_has 'EXIT STATUS'
vc 0 version
out_has '^vlunctl [0-9]+\.[0-9]+\.[0-9]+$'
vc 0 --version
out_has '^vlunctl [0-9]'
vc 0 help vdisk create
out_has 'vlunctl vdisk create <pool-spec> <name> --size SIZE'
vc 0 vdisk resize --help
out_has 'vlunctl vdisk resize <pool-spec> <name> --size SIZE \[--force\]'
vc 2 help frob
err_has "help 'frob'"

vc 2 frob
err_has "'frob': unknown command"
vc 2 pool
err_has 'missing command'
vc 2 vdisk frob /x
err_has 'unknown command'
vc 2 --bogus
err_has "option '--bogus': unknown option"
vc 2 pool show
err_has 'no pool given'
vc 2 vdisk show /x
err_has 'missing arguments.*vlunctl vdisk show <pool-spec> <name>'
vc 2 vdisk list /x extra
err_has 'too many arguments'
vc 2 pool show /x --size 1G
err_has 'pool show: --size: not an option of this command'
vc 2 vdisk create -p /x d --thin --size
err_has "option '--size': it needs a value"

# sizes are checked before the pool is opened (the pool need not exist)
for s in 10X 1000 0 -1G 1.2.3G '' 99999999999999P; do
	vc 2 vdisk create /nonexistent d --thin --size "$s"
	err_has "invalid --size '"
done
vc 2 vdisk create /nonexistent d --thin --size 10X
err_has "Give a number with an optional binary unit"
vc 2 vdisk create /nonexistent d --size 1G
err_has 'no layout given.*--linear, --striped or --thin'
vc 2 vdisk create /nonexistent d --size 1G --linear --thin
err_has 'more than one layout'
vc 2 vdisk create /nonexistent d --size 1G --linear --chunk 1M
err_has '--chunk applies to --thin only'
vc 2 vdisk create /nonexistent d --size 1G --thin --stripe-size 64K
err_has '--stripe-size and --width apply to --striped only'
vc 2 vdisk create /nonexistent d --size 1G --striped --width 0
err_has "invalid --width '0'"
vc 2 vdisk create /nonexistent d --size 1G --striped --stripe-size 1000
err_has "invalid --stripe-size '1000': not a multiple of 512"
for m in '1,,2' ',1' '1,' 'a' '1,1' '-1'; do
	vc 2 vdisk create /nonexistent d --size 1G --linear --members "$m"
	err_has "invalid --members"
done
vc 2 vdisk create /nonexistent d --size 1G
err_has "cannot create vdisk 'd'"
vc 2 vdisk create /nonexistent 'bad/name' --size 1G --thin
err_has "cannot create vdisk 'bad/name': invalid name"
vc 2 vdisk create /nonexistent .. --size 1G --thin
err_has 'invalid name'
vc 2 vdisk resize /nonexistent d
err_has 'no size given'

# pool create: name, members
mkdir -p "$T/dir"
truncate -s 64M "$T/dir/f0"
vc 2 pool create 'a b' "$T/dir/f0"
err_has "cannot create pool 'a b': invalid name"
vc 2 pool create p0
err_has 'no members given'
vc 3 pool create p0 "$T/dir/f0" "$T/dir/nope"
err_has "member '$T/dir/nope': No such file or directory"
vc 2 pool create p0 "$T/dir"
err_has 'not a regular file or block device'
vc 2 pool create p0 "$T/dir/f0" "$T/dir/f0"
err_has 'the same member is given twice'
vc 2 pool create p0 "$T/dir/f0" --meta-size 1Q
err_has "invalid --meta-size '1Q'"

# pool specs that name nothing
vc 3 pool show /nonexistent/pool
err_has 'cannot show pool: .*No such file or directory'
mkdir -p "$T/empty"
vc 3 vdisk list "$T/empty"
err_has 'no regular files or block devices'
vc 2 vdisk list "$T/dir,,$T/dir"
err_has 'empty item'

finish
