package gating

import (
	"slices"
	"testing"
)

func TestProductVersionFromNVR(t *testing.T) {
	for _, tc := range []struct {
		nvr, want string // want "" means none
	}{
		{"bash-5.2.26-3.fc41", "fedora-41"},
		{"kernel-6.11.0-0.rc5.20240830git.43.fc42", "fedora-42"},
		{"nethack-1.2.3-1.f35", "fedora-35"},
		{"nethack-1.2.3-1.rawhide", "fedora-rawhide"},
		{"nethack-1.2.3-1.el9000", "rhel-9000"},
		{"glibc-2.34-100.el9_4.2", ""},       // last dot part "2": no guess
		{"glibc-2.34-100.el9_4", "rhel-9"},   // el9_4 → rhel-9
		{"python-foo-1.0-1.el8", "rhel-8"},   // EPEL builds use el dist tags: override to epel-*
		{"foo-1.0-1.epel8", "epel-8"},        // explicit epel dist
		{"foo-1.0-1.rhel-9.2.0", ""},         // release "9.2.0": last part "0"
		{"foo-1.0-1.module+el8.1.0+123", ""}, // last part "0+123"
		{"foo-1.0-1.fc0", ""},                // zero is no version
		{"foo-1.0-1", ""},                    // no dist tag
		{"foo-1.0", ""},                      // not an NVR
		{"badnvr.elastic-1-228", ""},         // test_guess_product_version_failure
		{"badnvr-1.2-1.elastic8", ""},        // test_guess_product_version_failure
		{"el99", ""},                         // test_guess_product_version_failure
		{"badnvr-1.2.f30", ""},               // test_guess_product_version_failure
		{"389-ds-1.4-820181127205924.9edba152", ""},
	} {
		got, ok := ProductVersionFromNVR(tc.nvr)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ProductVersionFromNVR(%q) = %q, %v; want %q", tc.nvr, got, ok, tc.want)
		}
	}
}

// TestGuessProductVersion ports the build-target cases of
// test_guess_koji_build_product_version (greenwave/tests/
// test_product_versions.py): the same guess applies to dist tags.
func TestGuessProductVersion(t *testing.T) {
	for _, tc := range []struct {
		s, want string
	}{
		{"rawhide", "fedora-rawhide"},
		{"f35-candidate", "fedora-35"},
		{"epel7-candidate", "epel-7"},
		{"rhel-8.5.0-candidate", "rhel-8"},
		{"rhel-9.2.0-beta-candidate", "rhel-9"},
		{"fc41", "fedora-41"},
		{"el9_2", "rhel-9"},
		{"elastic8", ""},
		{"Fedora-Rawhide-20240101.n.0", "fedora-rawhide"},
	} {
		got, ok := guessProductVersion(tc.s, true)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("guess(%q) = %q, %v; want %q", tc.s, got, ok, tc.want)
		}
	}
}

// TestProductVersionFromComposeID includes
// test_subject_product_version_match (greenwave/tests/test_subjects.py).
func TestProductVersionFromComposeID(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"Fedora-Rawhide-20240101.n.0", "fedora-rawhide"},
		{"Fedora-41-20241020.0", "fedora-41"},
		{"Fedora-41-updates-20241020.0", "fedora-41"},
		{"Fedora-Cloud-41-20241020.0", "fedora-41"},
		{"Fedora-IoT-Rawhide-20240101.n.0", "fedora-rawhide"},
		{"Fedora-ELN-20240101.n.0", ""},
		{"RHEL-8.5.0-20210101.d.1", "rhel-8"},
		{"RHEL-9.0.0-20210101.d.2", "rhel-9"},
		{"RHEL-9.4.0-20240101.0", "rhel-9"},
		{"FEDORA-2021-35759ad8d3", ""},
		{"CentOS-Stream-9-20240101.0", ""},
	} {
		got, ok := ProductVersionFromComposeID(tc.id)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ProductVersionFromComposeID(%q) = %q, %v; want %q", tc.id, got, ok, tc.want)
		}
	}
}

func TestEngineProductVersions(t *testing.T) {
	e, err := NewEngine(nil, nil, WithProductVersionRules(
		ProductVersionRule{Match: `.*\.el(\d+)(_\d+)?$`, ProductVersion: `epel-\1`, SubjectType: "koji_build"},
		ProductVersionRule{Match: `FEDORA-EPEL-`, ProductVersion: `epel-next`},
		ProductVersionRule{Match: `Fedora-ELN-.*`, ProductVersion: `Fedora-ELN`},
	))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, id  string
		waiverPV string
		want     []string
	}{
		{"koji_build", "python-foo-1.0-1.el9", "", []string{"epel-9"}},
		{"koji_build", "python-foo-1.0-1.el9_3", "", []string{"epel-9"}},
		{"brew-build", "python-foo-1.0-1.el9", "", []string{"epel-9"}},
		{"koji_build", "bash-5.2-1.fc41", "", []string{"fedora-41"}},
		{"redhat-container-image", "foo-1.0-1.el9", "", []string{"rhel-9"}}, // the override is for koji_build only
		{"compose", "Fedora-ELN-20240101.n.0", "", []string{"fedora-eln"}},
		{"compose", "Fedora-41-20241020.0", "", []string{"fedora-41"}},
		{"bodhi_update", "FEDORA-2024-abcdef", "", nil},
		{"bodhi_update", "FEDORA-2024-abcdef", "fedora-41", []string{"fedora-41"}},
		{"bodhi_update", "FEDORA-EPEL-2024-abcdef", "fedora-41", []string{"epel-next2024-abcdef"}}, // re.sub keeps the text after the match
		{"koji_build", "foo-1.0", "", nil},
	} {
		s := &Subject{ID: tc.id}
		if tc.waiverPV != "" {
			s.Waivers = []WaiverSeries{{WaiverKey: WaiverKey{SubjectType: NormalizeSubjectType(tc.typ), Testcase: "t", ProductVersion: tc.waiverPV}}}
		}
		if got := e.ProductVersions(s, tc.typ); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: got %v, want %v", tc.typ, tc.id, got, tc.want)
		}
	}
	if _, err := NewEngine(nil, nil, WithProductVersionRules(ProductVersionRule{Match: "("})); err == nil {
		t.Error("bad override: no error")
	}
}

func TestPackageName(t *testing.T) {
	for id, want := range map[string]string{
		"nethack-1.2.3-1.el9000":     "nethack",
		"python-requests-2.0-1.fc41": "python-requests",
		"httpd-2.4.el9000":           "httpd",
		"nethack":                    "nethack",
	} {
		if got := packageName(id); got != want {
			t.Errorf("packageName(%q) = %q, want %q", id, got, want)
		}
	}
}
