// The last release that landed: its server must keep working on the schema this code migrates to, since during
// a rolling upgrade its instances serve beside the new ones (docs/operations.md, "Upgrading"). Each release moves
// this to the commit of the release before it, the one its operators roll back to.
// 5afc8c5 (issue 17's last) is the first release whose migrator starts on a database a newer release migrated;
// 832cb6b, before it, refused migration 0009 (issue 18) as unknown.
export const PREVIOUS_RELEASE = '5afc8c5'
